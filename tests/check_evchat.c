/* The unit test runner: one suite per area of the library. */
#include <signal.h>
#include <stdlib.h>

#include <check.h>

#include "suites.h"

int main(void)
{
	/* A peer that closes while we write must give EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);

	SRunner *runner = srunner_create(framing_suite());
	srunner_add_suite(runner, trailer_suite());
	srunner_add_suite(runner, found_bytes_suite());
	srunner_add_suite(runner, found_both_suite());
	srunner_add_suite(runner, direct_suite());
	srunner_add_suite(runner, asynchat_port_suite());
	srunner_add_suite(runner, output_suite());
	srunner_add_suite(runner, lifecycle_suite());
	srunner_add_suite(runner, lines_suite());
	srunner_add_suite(runner, length_suite());
	srunner_add_suite(runner, header_suite());
	srunner_add_suite(runner, limits_suite());
	srunner_add_suite(runner, pause_suite());
	srunner_add_suite(runner, mixed_suite());
	srunner_add_suite(runner, reentrancy_suite());
	srunner_add_suite(runner, transports_suite());
	srunner_add_suite(runner, closing_suite());
	srunner_add_suite(runner, starttls_suite());
	srunner_add_suite(runner, flow_suite());
	srunner_add_suite(runner, timeouts_suite());
	srunner_add_suite(runner, listener_suite());
	srunner_add_suite(runner, faults_suite());
	srunner_add_suite(runner, client_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
