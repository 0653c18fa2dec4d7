empty :=
space := $(empty) $(empty)
comma := ,
$(info [$(space)] [$(comma)] [a$(space)b])
$(info [ $(subst $(space),$(comma),a b  c) ])
  INDENTED = yes
$(info [$(INDENTED)])
TAB	=	tabbed
$(info [$(TAB)])
V = a\
    b \
	c
$(info [$(V)])
$(info a,b , c)
$(info $$ $$$$ $$x [$])
$(info ${INDENTED} $(INDENTED:yes=no))
weird$(empty)name = w
$(info [$(weirdname)])
