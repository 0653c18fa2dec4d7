X := $(file <.)
$(info not reached)
