"""The depth-to-image diffusion side of the method: loading, conditioning, DDIM, inversion,
activation hooks, guidance energies and the guided sampler. Pure torch + diffusers, no bpy."""
