/*
** lshoal.c
** Shoal's identity: release string of the linked library.
*/

#include "shoal.h"


const char *shoal_release (void) {
  return SHOAL_RELEASE;
}
