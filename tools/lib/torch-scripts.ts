// The PyTorch scripts bench:gpu:pack carries: tools/time_torch_gpu.py and every
// script of ours it imports (ResNet-50-GN's forward comes from the fixture
// scripts, through sizes_torch.py). tools/time-torch-gpu.test.ts checks the
// list against the scripts' imports.
export const TORCH_SCRIPTS = [
  'time_torch.py',
  'time_torch_gpu.py',
  'sizes_torch.py',
  'make_resnet_fixtures.py',
  'make_convnext_fixtures.py',
  'make_fixtures.py',
];
