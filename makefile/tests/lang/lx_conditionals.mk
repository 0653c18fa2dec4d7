# conditionals
A = 1
ifeq ($(A),1)
$(info 1 yes)
else
$(info 1 no)
endif
ifeq '$(A)' "1"
$(info 2 yes)
endif
ifneq "$(A)" '2'
$(info 3 yes)
endif
ifeq ( $(A) , 1 )
$(info 4 yes)
else
$(info 4 no)
endif
ifeq ($(B),)
$(info 5 empty)
endif
ifdef A
$(info 6 def)
endif
E =
ifdef E
$(info 7 def)
else
$(info 7 undef)
endif
R = $(E)
ifdef R
$(info 8 def)
endif
ifndef NOPE
$(info 9 ndef)
else ifeq (1,1)
$(info 9 no)
endif
ifeq (1,2)
$(info 10 a)
else ifeq (1,3)
$(info 10 b)
else ifneq (1,1)
$(info 10 c)
else
$(info 10 d)
endif
ifeq (1,1)
 ifeq (2,2)
  $(info 11 nested)
 endif
endif
ifeq (1,2)
  ifeq (x
  this is garbage but skipped
  endif
endif
$(info 12 after)
ifeq ($(strip  a ),a)
$(info 13 strip)
endif
ifeq (a,a) # comment
$(info 14 comment)
endif
C = a,b
ifeq ($(C),a,b)
$(info 15 comma)
else
$(info 15 nocomma)
endif
ifeq ("a b","a b")
$(info 16 quoted space)
endif
ifdef $(A)
$(info 17 computed)
else
$(info 17 not)
endif
