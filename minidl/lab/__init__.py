"""Teaching with minidl: exercises cut out of minidl's own sources, a student copy, and a grader.

    python -m minidl.lab list                 the exercises, one line each
    python -m minidl.lab student DIR          a copy of the project with every solution blanked
    python -m minidl.lab check N|all          a student's self-check of the copy it is run in
    python -m minidl.lab grade SUBMISSIONS/   the teacher's: each submission's answers graded in the
                                              teacher's project, into a gradebook

solutions.py finds the marked solution regions, writes the copy and splices answers back;
exercises.py lists the exercises; checks.py holds one check per exercise, run in the grader's
process; probes.py what the student's code computes for them, run in a child (student.py)
that answers over wire.py's messages; grading.py makes the verdict; gradebook.py grades a
class; reference.py holds the slow NumPy references the checks compare with.
"""
