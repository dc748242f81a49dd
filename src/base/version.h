/* The RabbitMQ release whose behaviour Warren follows. Clients, tools and test suites branch
 * on a RabbitMQ version (x-match all-with-x needs 3.10, x-first-death headers 3.7), so this is
 * what they are told: connection.start's "version" property, the management API's
 * rabbitmq_version and management_version, and the versions a definitions export names.
 * Warren's own version (PACKAGE_VERSION) goes under names of its own: "warren_version" in
 * connection.start, product_version in the management API. */
#ifndef WARREN_SRC_BASE_VERSION_H
#define WARREN_SRC_BASE_VERSION_H

#define WARREN_RABBITMQ_VERSION "3.10.8"

#endif
