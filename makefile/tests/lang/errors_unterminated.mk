A = $(B
$(info $(A))
