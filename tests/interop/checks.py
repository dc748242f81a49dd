"""What the interop scripts share to say what failed: a failed check raises CheckFailed with
the reason, and the script reports it and exits 1. Imported from the script's own folder."""


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def expect_eq(got, want, what):
    if got != want:
        raise CheckFailed("%s: got %r, expected %r" % (what, got, want))
