/* One Check suite per area, run by tests/check_evchat.c. */
#ifndef EVCHAT_TEST_SUITES_H_INCLUDED_
#define EVCHAT_TEST_SUITES_H_INCLUDED_

#include <check.h>

Suite *framing_suite(void);
Suite *trailer_suite(void);
Suite *found_bytes_suite(void);
Suite *found_both_suite(void);
Suite *direct_suite(void);
Suite *asynchat_port_suite(void);
Suite *output_suite(void);
Suite *lifecycle_suite(void);
Suite *lines_suite(void);
Suite *length_suite(void);
Suite *header_suite(void);
Suite *limits_suite(void);
Suite *pause_suite(void);
Suite *mixed_suite(void);
Suite *reentrancy_suite(void);
Suite *transports_suite(void);
Suite *closing_suite(void);
Suite *starttls_suite(void);
Suite *flow_suite(void);
Suite *timeouts_suite(void);
Suite *listener_suite(void);
Suite *faults_suite(void);
Suite *client_suite(void);

#endif
