/* Regular expressions that users write (policy and operator policy patterns, permissions and
 * topic permissions, and the same from a definitions file), compiled with a bound on what
 * compiling them costs. Every regcomp() of Warren goes through regex_compile_bounded().
 *
 * glibc's regcomp() expands a bounded repetition x{m,n} into n copies of x, the last n-m of
 * them nested optional groups, and keeps for every node of the resulting automaton the set of
 * nodes it reaches without consuming input (its epsilon closure). Both grow with the product
 * of nested bounds, the closures with its square: a policy with the pattern (.*){1,6000} holds
 * 1.5 GB for as long as it exists, (.*){1,32000} takes 24 GB and the broker with it. So the
 * pattern is first read as glibc reads it (POSIX extended syntax with the GNU operators, in
 * the C locale, which warrend never leaves) and two upper bounds are computed from its
 * structure, without expanding anything:
 *   nodes    the automaton nodes the expansion creates (memory linear in it, about 200 bytes
 *            a node);
 *   closure  the sum of the sizes of all epsilon closures (8 bytes an entry, and the time).
 * A pattern over a bound never reaches regcomp(), and neither does one where *, + or {n,}
 * repeats a part that can match the empty string: glibc then computes its closures again
 * along every path, in time exponential in the size of the pattern (((a?){0,10}()*){1,7}
 * takes a minute, each further copy 13 times as long). */
#ifndef WARREN_SRC_BASE_REGEX_H
#define WARREN_SRC_BASE_REGEX_H

#include <stddef.h>

#include <regex.h>

#define REGEX_MAX_BYTES   16384   /* pattern length */
#define REGEX_MAX_DEPTH   32      /* groups inside groups */
#define REGEX_MAX_NODES   100000  /* nodes after expanding repetitions: about 20 MB */
#define REGEX_MAX_CLOSURE 1000000 /* entries of all epsilon closures: about 8 MB */

/* 0 when ere is within every bound above, else -1 with why saying which it passes ("pattern
 * too long: ...", "pattern too complex: ..."). Back-references (\1 to \9) are refused as
 * well: their matching time has no bound. A malformed pattern is estimated as far as it goes
 * and passes if within the bounds, so that regcomp() reports what is wrong with it. */
int regex_check_cost(const char *ere, char *why, size_t why_size);

/* Compiles ere (POSIX extended) for matching only (REG_EXTENDED | REG_NOSUB) if
 * regex_check_cost() accepts it. 0, with re to be freed by regfree(); or -1 with why holding
 * the refusal or regerror()'s text, and nothing to free. */
int regex_compile_bounded(regex_t *re, const char *ere, char *why, size_t why_size);

#endif
