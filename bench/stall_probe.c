/* stall-probe: how long this machine stops running a program that never waits. One thread
 * per CPU reads the monotonic clock in a tight loop for a few seconds; any gap between two
 * readings is time the thread was not running although it wanted to (another process, the
 * kernel, or the hypervisor taking the virtual CPU away). bench/compare runs it before the
 * latency scenario: a broker's p99 cannot be lower than what these gaps do to a message.
 *
 * Usage: stall-probe [SECONDS (2)]
 * Output: one line 'stalls threads=N seconds=S over_200us=A over_1ms=B max_us=M
 * stalled_pct=P' (counts summed over the threads; stalled_pct: the share of the time lost
 * in gaps over 200 us). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct probe {
    double seconds;
    uint64_t over_200us, over_1ms, max_ns, lost_ns;
};

static uint64_t now_ns(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void *spin(void *arg)
{
    struct probe *p = arg;
    uint64_t start = now_ns(), last = start, end = start + (uint64_t)(p->seconds * 1e9);

    for (;;) {
        uint64_t t = now_ns(), gap = t - last;

        if (gap > 200000) {
            p->over_200us++;
            p->lost_ns += gap;
            if (gap > 1000000)
                p->over_1ms++;
        }
        if (gap > p->max_ns)
            p->max_ns = gap;
        last = t;
        if (t >= end)
            break;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    struct probe *probes;
    pthread_t *threads;
    struct probe sum = {0};

    if (seconds <= 0 || seconds > 600 || cpus < 1) {
        fprintf(stderr, "usage: stall-probe [SECONDS (0 < S <= 600)]\n");
        return 2;
    }
    probes = calloc((size_t)cpus, sizeof *probes);
    threads = calloc((size_t)cpus, sizeof *threads);
    if (probes == NULL || threads == NULL)
        return 1;
    for (long i = 0; i < cpus; i++) {
        probes[i].seconds = seconds;
        if (pthread_create(&threads[i], NULL, spin, &probes[i]) != 0) {
            perror("stall-probe: pthread_create");
            return 1;
        }
    }
    for (long i = 0; i < cpus; i++) {
        pthread_join(threads[i], NULL);
        sum.over_200us += probes[i].over_200us;
        sum.over_1ms += probes[i].over_1ms;
        sum.lost_ns += probes[i].lost_ns;
        if (probes[i].max_ns > sum.max_ns)
            sum.max_ns = probes[i].max_ns;
    }
    printf("stalls threads=%ld seconds=%.1f over_200us=%llu over_1ms=%llu max_us=%.0f "
           "stalled_pct=%.2f\n",
           cpus, seconds, (unsigned long long)sum.over_200us, (unsigned long long)sum.over_1ms,
           sum.max_ns / 1e3, 100.0 * (double)sum.lost_ns / (seconds * 1e9 * (double)cpus));
    free(probes);
    free(threads);
    return 0;
}
