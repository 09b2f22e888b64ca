/* Placeholder: connections over every kind of bufferevent. */
#ifndef EVCHAT_TEST_TRANSPORT_H_INCLUDED_
#define EVCHAT_TEST_TRANSPORT_H_INCLUDED_
#endif
