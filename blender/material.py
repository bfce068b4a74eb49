"""Unlit photo materials: the image texture straight into an Emission shader, so Material Preview
and Cycles renders show the photo's own colours (with the Standard view transform)."""
import bpy


def load_image(path, name=None):
    image = bpy.data.images.load(str(path), check_existing=False)
    if name:
        image.name = name
    image.colorspace_settings.name = "sRGB"
    return image


def photo_material(name, image):
    material = bpy.data.materials.new(name)
    if hasattr(material, "use_nodes") and not material.use_nodes:
        material.use_nodes = True
    tree = material.node_tree
    tree.nodes.clear()
    texture = tree.nodes.new("ShaderNodeTexImage")
    texture.image = image
    texture.interpolation = "Linear"
    texture.extension = "EXTEND"
    texture.location = (-400, 0)
    emission = tree.nodes.new("ShaderNodeEmission")
    emission.inputs["Strength"].default_value = 1.0
    emission.location = (-100, 0)
    output = tree.nodes.new("ShaderNodeOutputMaterial")
    output.location = (150, 0)
    tree.links.new(texture.outputs["Color"], emission.inputs["Color"])
    tree.links.new(emission.outputs["Emission"], output.inputs["Surface"])
    return material


def assign(obj, material):
    obj.data.materials.clear()
    obj.data.materials.append(material)
    # an unlit photo should neither cast shadows nor light other objects
    obj.visible_shadow = False
