"""The Pulumi program: reads the stack's settings and wires the components."""
