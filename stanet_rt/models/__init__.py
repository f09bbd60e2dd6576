"""Networks of STANet / STANet+: backbones, shared blocks, teachers, AudioSwitch and students."""
