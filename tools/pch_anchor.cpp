// Anchor translation unit for the precompiled LibTorch header target; it defines nothing.
