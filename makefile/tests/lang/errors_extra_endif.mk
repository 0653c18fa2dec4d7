A = 1
endif
