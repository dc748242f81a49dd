# tests/crash: warrend killed with SIGKILL at random moments under publishers with confirms
# (crash_test.c, run by crash_test.sh: CRASH_CYCLES=25 tests/crash/crash_test.sh for the
# full run).
check_PROGRAMS += tests/crash/crash_test
TESTS += tests/crash/crash_test.sh
EXTRA_DIST += tests/crash/crash_test.sh
tests_crash_crash_test_SOURCES = tests/crash/crash_test.c
tests_crash_crash_test_CFLAGS = $(AM_CFLAGS) $(RABBITMQ_CFLAGS) -pthread
tests_crash_crash_test_LDADD = $(RABBITMQ_LIBS) -lpthread
