"""Reference problems (quarter plate with a hole, holed specimen, cube, spinning blade under flight
cycles) and structured meshing."""

from romdask.problems.cube import cube_mesh, cube_problem, default_cube_material
from romdask.problems.meshing import (
    boundary_faces,
    box,
    box_node_count,
    convert,
    face_nodes,
    hex8_to_hex20,
    hex_to_tet4,
    map_nodes,
    nodes_where,
    surface_where,
    tet4_to_tet10,
)
from romdask.problems.plate import (
    cyclic_times,
    default_plate_material,
    plate_mesh,
    plate_mesh_for_nodes,
    plate_n_for_nodes,
    plate_node_count,
    plate_problem,
    plate_traction_problem,
    ring_mesh,
)
from romdask.problems.specimen import specimen_mesh, specimen_problem
from romdask.problems.thermal import (
    blade_mesh,
    blade_n_for_nodes,
    blade_node_count,
    default_thermal_material,
    flight_cycle,
    thermal_problem,
)

__all__ = [
    "blade_mesh",
    "blade_n_for_nodes",
    "blade_node_count",
    "boundary_faces",
    "box",
    "box_node_count",
    "convert",
    "cube_mesh",
    "cube_problem",
    "cyclic_times",
    "default_cube_material",
    "default_plate_material",
    "default_thermal_material",
    "face_nodes",
    "flight_cycle",
    "hex8_to_hex20",
    "hex_to_tet4",
    "map_nodes",
    "nodes_where",
    "plate_mesh",
    "plate_mesh_for_nodes",
    "plate_n_for_nodes",
    "plate_node_count",
    "plate_problem",
    "plate_traction_problem",
    "ring_mesh",
    "specimen_mesh",
    "specimen_problem",
    "surface_where",
    "tet4_to_tet10",
    "thermal_problem",
]
