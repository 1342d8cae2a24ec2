# The C extension setup.py builds from xpopt.kernels.host_c_source() when a compiler is
# there: xpopt.hostkernels loads it with ctypes.CDLL(_hostkernels.__file__) and looks its
# kernels up by name (xpopt.kernels.host_function_name), so Python sees no names in it.
