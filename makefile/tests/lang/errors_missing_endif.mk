ifeq (a,a)
A = 1
