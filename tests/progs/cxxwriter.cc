// A C++ program that writes with std::cout and std::cerr (stdio-synced,
// the default), which a write() hook alone never sees.
#include <cstdlib>
#include <iostream>

int
main(int argc, char **argv)
{
	long n = argc > 1 ? std::atol(argv[1]) : 3;

	for (long i = 0; i < n; i++)
		std::cout << "cxx line " << i << '\n';
	std::cerr << "cxx to cerr" << std::endl;
	std::cout << "cxx last without flush";
	return 0;
}
