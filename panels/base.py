"""What every Diffusion Handles panel shares: its title. Blender names a panel without
``bl_idname`` after its class (``DH_PT_...``)."""


class DHPanel:
    bl_label = "Diffusion Handles"
