//! HSA allocation hooks (see issue 3).
