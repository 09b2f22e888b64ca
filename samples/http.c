/* Placeholder: the http sample is being written. */
#include <stdio.h>

int main(void)
{
	puts("usage: http [-p PORT]");
	return 0;
}
