V = one \
  two
$(info [$(V)])
