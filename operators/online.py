"""OnlineOnly: the mix-in of operators that download (available only when Blender may go online)."""
import bpy


class OnlineOnly:
    """Mix-in: the operator downloads, so it is available only when Blender may go online."""

    @classmethod
    def poll(cls, context):
        if not bpy.app.online_access:
            cls.poll_message_set("Online access is disabled (Preferences > System > Network)")
            return False
        return True
