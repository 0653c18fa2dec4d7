$(eval ifeq (a,a))
