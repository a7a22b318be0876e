// A C++ program that writes with std::cout and std::cerr (stdio-synced,
// the default), which a write() hook alone never sees. "cxxwriter throw"
// writes a line and dies of an uncaught exception: libstdc++ says so on
// stderr ("terminate called after throwing ...") and the program aborts.
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>

int
main(int argc, char **argv)
{
	if (argc > 1 && std::strcmp(argv[1], "throw") == 0) {
		std::cout << "cxx before the throw" << std::endl;
		throw std::runtime_error("cxx boom");
	}

	long n = argc > 1 ? std::atol(argv[1]) : 3;

	for (long i = 0; i < n; i++)
		std::cout << "cxx line " << i << '\n';
	std::cerr << "cxx to cerr" << std::endl;
	std::cout << "cxx last without flush";
	return 0;
}
