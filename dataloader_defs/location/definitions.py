"""The code location's one component, the control tables, built as plain definitions of this defs
folder: a component declared in a Python file would have Dagster rewrite every asset's metadata
(its code reference) after the build, which rebuilds the 10,000-asset multi-asset a second time."""

from dagster import Definitions, definitions
from dagster.components import ComponentLoadContext

from dataloader_defs.control_tables_component import ControlTablesComponent


@definitions
def defs(context: ComponentLoadContext) -> Definitions:
    """The component's definitions; its state key is marked on the tree, so that a reload with new
    state (`ReloadCodeWithState`) rebuilds it."""
    component = ControlTablesComponent()
    context.component_tree.mark_component_defs_state_key(
        defs_state_key=component.defs_state_config.key, loc=context.component_loc
    )
    return component.build_defs(context)
