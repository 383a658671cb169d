"""Teaching with minidl: exercises cut out of minidl's own sources, a student copy, and a grader.

    python -m minidl.lab list                 the exercises, one line each
    python -m minidl.lab student DIR          a copy of the project with every solution blanked
    python -m minidl.lab check N|all          grade (values, float64 gradients, kernels under
                                              AddressSanitizer on the emulator, training thresholds)

solutions.py finds the marked solution regions and writes the copy; exercises.py lists the
exercises; checks.py holds one check per exercise; grading.py runs them in a child process
and words what went wrong; reference.py holds the slow NumPy references they compare with.
"""
