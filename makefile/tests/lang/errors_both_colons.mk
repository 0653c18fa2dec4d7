a: b
a:: c
