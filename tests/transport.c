/* Placeholder: connections over every kind of bufferevent. */
#include "transport.h"
