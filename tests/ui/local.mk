# tests/ui: the management web UI (www/, served by src/mgmt/ui.c).
# check_ui: the rules of the paths it serves (Check, in tests/unit with the other suites).
check_PROGRAMS += tests/unit/check_ui
TESTS += tests/unit/check_ui
tests_unit_check_ui_SOURCES = tests/unit/check_ui.c
tests_unit_check_ui_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(MHD_CFLAGS)
tests_unit_check_ui_LDADD = $(WARREN_LIBS) $(CHECK_LIBS)

# www_listed.sh: every file of www/ is installed.
# ui.sh: the UI in headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core,
# which tests/ui/setup.sh installs into tests/ui/node_modules (scripts/deps runs it). It
# fails when either is missing. Screenshots of each page: tests/ui/screenshots/ here, in the
# build tree. Against another broker: AMQP_HOST, AMQP_PORT and MGMT_URL (a warrend with the
# UI; RabbitMQ's own UI is another program).
TESTS += tests/ui/ui.sh tests/ui/www_listed.sh
EXTRA_DIST += tests/ui/ui.sh tests/ui/www_listed.sh tests/ui/ui.mjs tests/ui/setup.sh tests/ui/package.json \
	tests/ui/package-lock.json

clean-local: clean-ui-screenshots
clean-ui-screenshots:
	rm -rf tests/ui/screenshots
.PHONY: clean-ui-screenshots
