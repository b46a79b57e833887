// Declarations only (include/CFuzzDriver.h); SwiftPM needs a source file per C target.
#include "CFuzzDriver.h"
