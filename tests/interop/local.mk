# tests/interop: build fragment included by the top Makefile.am
