/* The cost of a user's regular expression, estimated before regcomp() sees it: see regex.h.
 *
 * The estimate follows glibc's parser and compiler (posix/regcomp.c) construct by construct
 * and describes each part of the pattern by a struct part. Parts combine as glibc joins the
 * pieces of its automaton:
 *   xy     x's end leads to y's first node;
 *   x|y    one OP_ALT node leading to both;
 *   x*     one OP_DUP_ASTERISK node leading into x and past it; x's end leads back to it;
 *   x?     x|(nothing);
 *   x+     x x*;
 *   x{m,n} m copies of x, then (((x)? x)? ... x)? with n-m copies; x{m,} is m copies and x*.
 * A group costs nothing (with REG_NOSUB glibc drops it) unless it is empty. Anchors (^ $ \b
 * \< \` ...) are nodes without input that lead on to what follows, and glibc clones what
 * each of them reaches without input (see struct part). Without anchors and brackets the
 * figures are exactly glibc's; brackets are counted as a multibyte locale builds them and
 * anchors by an upper bound, so the figures never fall below glibc's. Checked against glibc
 * 2.36 by reading its nodes and closures after regcomp() for a few thousand generated
 * patterns.
 *
 * Figures are doubles: they only grow, an overflow becomes infinity and still compares above
 * the limit, and the estimate stops as soon as a part passes one, so that the work done here
 * stays small (a repetition's mandatory copies are counted by squaring, its optional ones add
 * at least one node and a closure entry per copy already made, so they pass the closure limit
 * within some 1,500 steps). */
#include "src/base/regex.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* glibc refuses bounds above its RE_DUP_MAX, 0x7fff; numbers are read up to one past it. */
#define BOUND_MAX 0x8000L

/* What a part of the pattern adds to the automaton. */
struct part {
    double nodes;   /* nodes it expands to */
    double entry;   /* the epsilon closure of its first node, counted inside the part */
    double closure; /* the epsilon closures of all its nodes, counted inside the part */
    double to_exit; /* how many of its nodes have a closure that reaches its end, and so
                     * also holds the first nodes of what follows */
    bool nullable;  /* its first node reaches its end without input */

    /* Anchors. glibc gives every node an anchor reaches without input a clone bound to the
     * anchor's condition (duplicate_node_closure()): a walk along the epsilon edges that
     * clones each node it visits, and clones a node again each time it comes to it other
     * than as the first branch of an alternation or a star. Such a walk entering the part: */
    double walk_nodes; /* clones it makes inside the part */
    double walk_exits; /* how often it leaves the part through its end */
    /* The anchors inside the part: */
    double clones;        /* clones their walks made so far */
    double pending;       /* how often their walks reached the part's end (each goes on
                           * into what follows) */
    double reach;         /* for each anchor, the nodes whose closure holds it */
    double entry_anchors; /* anchors in the closure of the part's first node */
    bool empty_loop;      /* a star repeats a nullable part: see star() */
};

struct estimate {
    const char *s; /* next byte of the pattern */
    bool refused;  /* a bound is passed: stop */
    char *why;
    size_t why_size;
};

static void refuse(struct estimate *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void refuse(struct estimate *e, const char *fmt, ...)
{
    va_list ap;

    e->refused = true;
    if (e->why == NULL || e->why_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(e->why, e->why_size, fmt, ap);
    va_end(ap);
}

/* Products of figures that may be infinite: what is absent costs nothing. */
static double times(double a, double b)
{
    return a == 0 || b == 0 ? 0 : a * b;
}

/* ---- Parts and how they combine ---------------------------------------------------------- */

/* Nothing at all: a walk passes straight through. */
static const struct part nothing = {.nullable = true, .walk_exits = 1};

/* A character, '.', or a bracket in the C locale: one node that consumes a byte. */
static const struct part one_byte = {.nodes = 1, .entry = 1, .closure = 1, .walk_nodes = 1};

/* A node that consumes nothing and leads on (the two of an empty group). */
static const struct part epsilon = {.nodes = 1,
                                    .entry = 1,
                                    .closure = 1,
                                    .to_exit = 1,
                                    .nullable = true,
                                    .walk_nodes = 1,
                                    .walk_exits = 1};

/* An anchor: an epsilon node with a condition, whose walk starts past it. */
static const struct part anchor = {.nodes = 1,
                                   .entry = 1,
                                   .closure = 1,
                                   .to_exit = 1,
                                   .nullable = true,
                                   .walk_nodes = 1,
                                   .walk_exits = 1,
                                   .pending = 1,
                                   .reach = 1,
                                   .entry_anchors = 1};

static struct part concat(struct part x, struct part y)
{
    return (struct part){
        .nodes = x.nodes + y.nodes,
        .entry = x.entry + (x.nullable ? y.entry : 0),
        .closure = x.closure + y.closure + times(x.to_exit, y.entry),
        .to_exit = y.to_exit + (y.nullable ? x.to_exit : 0),
        .nullable = x.nullable && y.nullable,
        /* Each time a walk leaves x it walks y afresh. */
        .walk_nodes = x.walk_nodes + times(x.walk_exits, y.walk_nodes),
        .walk_exits = times(x.walk_exits, y.walk_exits),
        .clones = x.clones + y.clones + times(x.pending, y.walk_nodes),
        .pending = times(x.pending, y.walk_exits) + y.pending,
        .reach = x.reach + y.reach + times(x.to_exit, y.entry_anchors),
        .entry_anchors = x.entry_anchors + (x.nullable ? y.entry_anchors : 0),
        .empty_loop = x.empty_loop || y.empty_loop,
    };
}

static struct part alternation(struct part x, struct part y)
{
    double entry = 1 + x.entry + y.entry;
    bool nullable = x.nullable || y.nullable;

    return (struct part){
        .nodes = x.nodes + y.nodes + 1,
        .entry = entry,
        .closure = x.closure + y.closure + entry,
        .to_exit = x.to_exit + y.to_exit + (nullable ? 1 : 0),
        .nullable = nullable,
        .walk_nodes = 1 + x.walk_nodes + y.walk_nodes,
        .walk_exits = x.walk_exits + y.walk_exits,
        .clones = x.clones + y.clones,
        .pending = x.pending + y.pending,
        .reach = x.reach + y.reach + x.entry_anchors + y.entry_anchors,
        .entry_anchors = x.entry_anchors + y.entry_anchors,
        .empty_loop = x.empty_loop || y.empty_loop,
    };
}

static struct part optional(struct part x)
{
    return alternation(x, nothing);
}

static struct part star(struct part x)
{
    double entry = 1 + x.entry;
    /* A walk leaving x comes back to the star node (copied again), whose branch into x is
     * then known and whose other branch leaves. */
    double again = 1 + x.walk_nodes + x.walk_exits;

    return (struct part){
        .nodes = x.nodes + 1,
        .entry = entry,
        /* x's end leads back to the star node, so what reaches it gets its closure too. */
        .closure = x.closure + entry + times(x.to_exit, entry),
        .to_exit = x.to_exit + 1,
        .nullable = true,
        .walk_nodes = again,
        .walk_exits = 1 + x.walk_exits,
        .clones = x.clones + times(x.pending, again),
        .pending = times(x.pending, 1 + x.walk_exits),
        .reach = x.reach + times(1 + x.to_exit, x.entry_anchors),
        .entry_anchors = x.entry_anchors,
        /* A nullable x makes a loop of nodes without input. glibc's closures then come out
         * incomplete, are thrown away and computed again along every path that reaches the
         * loop: ((a?){0,10}()*){1,7} takes a minute to compile, each further copy 13 times
         * as long. Such a pattern is refused: a star of what x matches besides the empty
         * string (a* for (a?)*) matches the same names. */
        .empty_loop = x.empty_loop || x.nullable,
    };
}

/* A bracket expression or \w \W \s \S: in a multibyte locale glibc makes it two nodes under
 * an alternation; counting that keeps the bound true in any locale. */
static struct part bracket(void)
{
    return alternation(one_byte, one_byte);
}

/* \b and \B: glibc makes each an alternation of two anchors. */
static struct part word_boundary(void)
{
    return alternation(anchor, anchor);
}

/* What glibc ends up with: the clones are nodes too; a clone's closure holds only clones, and
 * each node whose closure holds an anchor gains at most every clone. */
static double total_nodes(struct part p)
{
    return p.nodes + p.clones;
}

static double total_closure(struct part p)
{
    return p.closure + times(p.clones, p.clones) + times(p.reach, p.clones);
}

static bool passes_a_bound(struct estimate *e, struct part p)
{
    if (e->refused)
        return true;
    if (p.empty_loop)
        refuse(e, "pattern too complex: * + or {n,} repeats a part that can match the empty "
                  "string");
    else if (total_nodes(p) > REGEX_MAX_NODES)
        refuse(e, "pattern too complex: repetition bounds expand it to more than %d nodes",
               REGEX_MAX_NODES);
    else if (total_closure(p) > REGEX_MAX_CLOSURE)
        refuse(e,
               "pattern too complex: its repetitions and alternatives would take more than "
               "%d steps to compile",
               REGEX_MAX_CLOSURE);
    return e->refused;
}

/* count copies of x one after the other, by squaring: concat is associative. */
static struct part copies(struct part x, long count)
{
    struct part result = nothing;

    while (count > 0) {
        if (count & 1)
            result = concat(result, x);
        count >>= 1;
        if (count > 0)
            x = concat(x, x);
    }
    return result;
}

/* x{min,max}, max < 0 for no upper bound, built as glibc's parse_dup_op() builds it. */
static struct part repeat(struct estimate *e, struct part x, long min, long max)
{
    struct part mandatory = copies(x, min), rest;

    if (max == min || passes_a_bound(e, mandatory))
        return mandatory;
    if (max < 0)
        return concat(mandatory, star(x));
    rest = optional(x);
    for (long i = min + 2; i <= max && !passes_a_bound(e, rest); i++)
        rest = optional(concat(rest, x));
    return concat(mandatory, rest);
}

/* ---- Reading the pattern as glibc does ------------------------------------------------ */

static struct part parse_alternatives(struct estimate *e, int depth);

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Digits at s, as a number up to BOUND_MAX; -1 if there are none. */
static long read_bound(const char **sp)
{
    const char *s = *sp;
    long n = -1;

    for (; is_digit(*s); s++) {
        n = n < 0 ? *s - '0' : n * 10 + (*s - '0');
        if (n > BOUND_MAX)
            n = BOUND_MAX;
    }
    *sp = s;
    return n;
}

/* An interval at e->s, after its '{': {m}, {m,}, {m,n}, and glibc's {,n} for {0,n}. False,
 * with nothing read, for anything else (which regcomp refuses in extended syntax). */
static bool read_interval(struct estimate *e, long *min, long *max)
{
    const char *s = e->s;

    *min = read_bound(&s);
    *max = *min;
    if (*s == ',') {
        s++;
        if (*min < 0)
            *min = 0;
        *max = read_bound(&s);
    }
    if (*min < 0 || *s != '}')
        return false;
    /* Bounds glibc refuses (min > max, above RE_DUP_MAX) are still counted, never skipped. */
    if (*max >= 0 && *max < *min)
        *max = *min;
    e->s = s + 1;
    return true;
}

/* Moves past a bracket expression, its '[' already read, where glibc's parse_bracket_exp()
 * ends it: at the first ']' that is neither its first member nor inside [:class:], [=equiv=]
 * or [.coll.] (a backslash is an ordinary member). Unterminated, it runs to the end and
 * regcomp refuses the pattern. */
static void skip_bracket(struct estimate *e)
{
    const char *s = e->s;

    if (*s == '^')
        s++;
    if (*s == ']')
        s++;
    while (*s != '\0' && *s != ']') {
        if (s[0] == '[' && (s[1] == ':' || s[1] == '=' || s[1] == '.')) {
            char delimiter = s[1];

            for (s += 2; *s != '\0' && !(s[0] == delimiter && s[1] == ']'); s++)
                ;
            if (*s != '\0')
                s += 2;
        } else {
            s++;
        }
    }
    if (*s == ']')
        s++;
    e->s = s;
}

/* One atom; *is_anchor when it is one (glibc applies no repetition to an anchor). */
static struct part parse_atom(struct estimate *e, int depth, bool *is_anchor)
{
    char c = *e->s++;
    struct part group;

    *is_anchor = false;
    switch (c) {
    case '(':
        if (depth >= REGEX_MAX_DEPTH) {
            refuse(e, "pattern too complex: groups nested more than %d deep", REGEX_MAX_DEPTH);
            return nothing;
        }
        group = parse_alternatives(e, depth + 1);
        if (*e->s == ')')
            e->s++; /* else unmatched: regcomp refuses it */
        /* An empty group keeps its two subexpression nodes even with REG_NOSUB. */
        return group.nodes > 0 ? group : concat(epsilon, epsilon);
    case '[':
        skip_bracket(e);
        return bracket();
    case '^':
    case '$':
        *is_anchor = true;
        return anchor;
    case '\\':
        c = *e->s;
        if (c == '\0')
            return one_byte; /* a trailing backslash: regcomp refuses it */
        e->s++;
        if (c >= '1' && c <= '9') {
            refuse(e, "back-references are not supported");
            return nothing;
        }
        if (strchr("<>`'", c) != NULL) {
            *is_anchor = true;
            return anchor;
        }
        if (c == 'b' || c == 'B') {
            *is_anchor = true;
            return word_boundary();
        }
        if (strchr("wWsS", c) != NULL)
            return bracket();
        return one_byte;
    default:
        /* Also a repetition operator with nothing to repeat: regcomp refuses it in
         * extended syntax, and counting it as a character can only overestimate. */
        return one_byte;
    }
}

/* An atom and the repetition operators after it, which glibc applies one by one:
 * a{2}{3} is (a{2}){3}. */
static struct part parse_piece(struct estimate *e, int depth)
{
    bool is_anchor;
    struct part p = parse_atom(e, depth, &is_anchor);
    long min, max;

    if (is_anchor)
        return p;
    while (!passes_a_bound(e, p)) {
        switch (*e->s) {
        case '*':
            e->s++;
            p = star(p);
            break;
        case '+':
            e->s++;
            p = concat(p, star(p));
            break;
        case '?':
            e->s++;
            p = optional(p);
            break;
        case '{':
            e->s++;
            if (!read_interval(e, &min, &max))
                return p; /* a '{' that is not an interval: regcomp refuses it */
            p = repeat(e, p, min, max);
            break;
        default:
            return p;
        }
    }
    return p;
}

/* Pieces up to a '|', the end of the enclosing group or of the pattern. */
static struct part parse_branch(struct estimate *e, int depth)
{
    struct part p = nothing;

    while (*e->s != '\0' && *e->s != '|' && !(*e->s == ')' && depth > 0) && !passes_a_bound(e, p))
        p = concat(p, parse_piece(e, depth));
    return p;
}

/* Branches separated by '|', which glibc nests to the left: ((a|b)|c). A ')' outside any
 * group is an ordinary character in glibc's extended syntax. */
static struct part parse_alternatives(struct estimate *e, int depth)
{
    struct part p = parse_branch(e, depth);

    while (*e->s == '|' && !passes_a_bound(e, p)) {
        e->s++;
        p = alternation(p, parse_branch(e, depth));
    }
    return p;
}

int regex_check_cost(const char *ere, char *why, size_t why_size)
{
    struct estimate e = {.s = ere, .why = why, .why_size = why_size};
    struct part p;

    if (strlen(ere) > REGEX_MAX_BYTES) {
        refuse(&e, "pattern too long: more than %d bytes", REGEX_MAX_BYTES);
        return -1;
    }
    /* glibc ends the automaton with one END_OF_RE node. */
    p = concat(parse_alternatives(&e, 0), one_byte);
    return passes_a_bound(&e, p) ? -1 : 0;
}

int regex_compile_bounded(regex_t *re, const char *ere, char *why, size_t why_size)
{
    int rc;

    if (regex_check_cost(ere, why, why_size) != 0)
        return -1;
    if ((rc = regcomp(re, ere, REG_EXTENDED | REG_NOSUB)) != 0) {
        regerror(rc, re, why, why_size);
        return -1;
    }
    return 0;
}
