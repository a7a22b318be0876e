/* The demo's C program: stdio output, as NCCL or CUDA would print it. */
#include <stdio.h>
#include <stdlib.h>

int
main(int argc, char **argv)
{
	int	rank = argc > 1 ? atoi(argv[1]) : 0;

	printf("c-helper: rank %d says hello from printf\n", rank);
	fprintf(stderr, "c-helper: NCCL INFO rank %d ready\n", rank);
	return (0);
}
