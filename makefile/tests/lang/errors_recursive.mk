A = $(B)
B = $(A)
$(info $(A))
