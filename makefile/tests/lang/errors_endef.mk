define X
abc
