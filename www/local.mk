# The management web UI: static files that warrend serves at / on the management port
# (src/mgmt/ui.h), installed as they are under $(pkgdatadir)/www. Plain HTML, CSS and
# JavaScript modules: no build step, nothing fetched at run time.
nobase_dist_pkgdata_DATA = \
	www/index.html \
	www/css/warren.css \
	www/img/favicon.svg \
	www/js/api.js \
	www/js/app.js \
	www/js/chart.js \
	www/js/dom.js \
	www/js/forms.js \
	www/js/list.js \
	www/js/messages.js \
	www/js/pages/admin.js \
	www/js/pages/connections.js \
	www/js/pages/definitions.js \
	www/js/pages/exchanges.js \
	www/js/pages/overview.js \
	www/js/pages/queues.js
