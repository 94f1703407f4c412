#include "CPodTapPcap.h"
