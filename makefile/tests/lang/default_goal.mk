$(info [$(.DEFAULT_GOAL)])
.PHONY: all
.SUFFIXES:
%.o: %.c ; cc $<
.hidden: ; @:
first second: ; @:
$(info [$(.DEFAULT_GOAL)])
.DEFAULT_GOAL := second
later: ; @:
$(info [$(.DEFAULT_GOAL)])
.DEFAULT_GOAL :=
again: ; @:
$(info [$(.DEFAULT_GOAL)])
