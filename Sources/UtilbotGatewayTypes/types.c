/* The types header is all this target has; C targets need one source file. */
#include "utilbot_gateway_types.h"
