/* Placeholder: the chat sample is being written. */
#include <stdio.h>

int main(void)
{
	puts("usage: chat [-p PORT]");
	return 0;
}
