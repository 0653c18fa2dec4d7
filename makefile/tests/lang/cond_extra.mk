ifeq (a,a) junk
$(info one)
endif junk
ifdef
$(info two)
endif
ifeq ($(x),)
$(info three)
else junk
endif
