/*
** lfrozen.h
** Frozen data's entry in the base library (lbaselib.c), which sees only
** the public API.
*/

#ifndef lfrozen_h
#define lfrozen_h

#include "lua.h"

LUAI_FUNC int shoalF_nogc (lua_State *L);

#endif
