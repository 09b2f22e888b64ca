/* Placeholder: the resp sample is being written. */
#include <stdio.h>

int main(void)
{
	puts("usage: resp [-p PORT]");
	return 0;
}
