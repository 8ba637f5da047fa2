"""Evidence a program can produce about an answer, and running model-written code.

Module by module (each imports only those above it):

* :mod:`.programs`: recognising code questions and taking the one program out of an answer;
* :mod:`.examples`: the function a question asks for and the examples it states, as asserts;
* :mod:`.program_tests`: tests from examples or written by a model, verdicts, ranking (CodeT);
* :mod:`.agreement`: CodeT's dual agreement among programs on written tests;
* :mod:`.stated_form`: the form a text question states, read and checked by a program;
* :mod:`.form`: a checker of that form a model writes, run in the sandbox;
* :mod:`.isolation`: what surrounds a model-written program (the guard, bubblewrap);
* :mod:`.sandbox`: running one such program in a throwaway process.

Nothing here knows about models, the engine or the command line.
"""
