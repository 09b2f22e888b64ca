/* Placeholder: pushing from several threads. */
#include <stdlib.h>
int main(void)
{
	return 77;
}
