# tests/integration: build fragment included by the top Makefile.am
