/*
** shoal.h
** Shoal: a runtime for many Lua 5.4 VMs in one process.
** Everything here extends the Lua 5.4.7 C API; lua.h is unchanged.
*/

#ifndef shoal_h
#define shoal_h

#include "lua.h"

#define SHOAL_VERSION_MAJOR	"0"
#define SHOAL_VERSION_MINOR	"1"
#define SHOAL_VERSION_NUM	1

#define SHOAL_VERSION	"Shoal " SHOAL_VERSION_MAJOR "." SHOAL_VERSION_MINOR
#define SHOAL_RELEASE	SHOAL_VERSION " on " LUA_RELEASE
#define SHOAL_COPYRIGHT	SHOAL_VERSION " on " LUA_COPYRIGHT


/*
** The release string of the library actually linked: a host built against
** one shoal.h can check it runs with the libshoal.a it expects.
*/
LUA_API const char *(shoal_release) (void);

#endif
