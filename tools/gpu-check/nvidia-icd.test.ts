/**
 * nvidia-icd.sh, the GPU worker image's entrypoint and the GPU check's driver finder, on made-up driver layouts:
 * NVIDIA_ICD_DIRS and NVIDIA_LIB_DIRS stand in for the loader's folders and the driver's library folders.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const SCRIPT = resolve(import.meta.dirname, 'nvidia-icd.sh');
let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the script as an entrypoint around `env`; the environment the wrapped command saw, and the messages. */
function entry(env: Record<string, string>): { env: Record<string, string>; stderr: string } {
  const out = execFileSync('bash', ['-c', `bash ${SCRIPT} "$@" 2>"${dir}/stderr"`, '_', join(dir, 'written'), 'env'], {
    encoding: 'utf8',
    env: { PATH: process.env['PATH']!, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const seen = Object.fromEntries(
    out
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  return { env: seen, stderr: readFileSync(join(dir, 'stderr'), 'utf8') };
}

function layout(files: Record<string, string>): { icd: string; lib: string } {
  dir = mkdtempSync(join(tmpdir(), 'nvidia-icd-'));
  const [icd, lib] = [join(dir, 'icd.d'), join(dir, 'lib')];
  mkdirSync(icd);
  mkdirSync(lib);
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
  return { icd, lib };
}

describe('nvidia-icd.sh', () => {
  it("leaves the loader to NVIDIA's own ICD file when the driver has no EGL library", () => {
    const { icd, lib } = layout({
      'icd.d/lvp_icd.json': '{"ICD": {"library_path": "libvulkan_lvp.so"}}',
      'icd.d/nvidia_icd.json': '{"ICD": {"library_path": "libGLX_nvidia.so.0"}}',
      'lib/libGLX_nvidia.so.0': '',
    });
    const r = entry({ NVIDIA_ICD_DIRS: icd, NVIDIA_LIB_DIRS: lib });
    expect(r.env['VK_ICD_FILENAMES']).toBeUndefined();
    expect(r.stderr).toContain(join(icd, 'nvidia_icd.json'));
  });

  it("names the driver's EGL library in place of an ICD file naming the GLX one (headless, the GLX one has no vkCreateInstance)", () => {
    const { icd, lib } = layout({
      'icd.d/nvidia_icd.json': '{\n  "ICD": {\n    "library_path" : "libGLX_nvidia.so.0"\n  }\n}',
      'lib/libGLX_nvidia.so.0': '',
      'lib/libEGL_nvidia.so.0': '',
    });
    const r = entry({ NVIDIA_ICD_DIRS: icd, NVIDIA_LIB_DIRS: lib });
    const written = join(dir, 'written', 'nvidia_icd.json');
    expect(r.env['VK_ICD_FILENAMES']).toBe(written);
    const json = JSON.parse(readFileSync(written, 'utf8')) as { ICD: Record<string, string> };
    expect(json.ICD['library_path']).toBe(join(lib, 'libEGL_nvidia.so.0'));
    expect(r.stderr).toContain(`in place of ${join(icd, 'nvidia_icd.json')}`);
  });

  it('keeps an ICD file that names a library other than the GLX one', () => {
    const { icd, lib } = layout({
      'icd.d/nvidia_icd.json': '{"ICD": {"library_path": "libnvidia-vulkan.so.1"}}',
      'lib/libEGL_nvidia.so.0': '',
    });
    const r = entry({ NVIDIA_ICD_DIRS: icd, NVIDIA_LIB_DIRS: lib });
    expect(r.env['VK_ICD_FILENAMES']).toBeUndefined();
    expect(r.stderr).toContain('libnvidia-vulkan.so.1');
  });

  it('prefers the EGL library when the container got the libraries without an ICD file', () => {
    const { icd, lib } = layout({ 'lib/libGLX_nvidia.so.0': '', 'lib/libEGL_nvidia.so.0': '' });
    const r = entry({ NVIDIA_ICD_DIRS: icd, NVIDIA_LIB_DIRS: lib });
    const written = join(dir, 'written', 'nvidia_icd.json');
    expect(r.env['VK_ICD_FILENAMES']).toBe(written);
    expect(readFileSync(written, 'utf8')).toContain(join(lib, 'libEGL_nvidia.so.0'));
  });

  it('writes an ICD file naming the driver library when the container got the library without one', () => {
    // Mesa's drivers may be installed, NVIDIA's ICD file is not: only NVIDIA's is wanted then
    const { icd, lib } = layout({ 'icd.d/lvp_icd.json': '{"ICD": {"library_path": "libvulkan_lvp.so"}}' });
    writeFileSync(join(lib, 'libGLX_nvidia.so.0'), '');
    const r = entry({ NVIDIA_ICD_DIRS: icd, NVIDIA_LIB_DIRS: `/nonexistent:${lib}`, LD_LIBRARY_PATH: '/opt/x' });
    const written = join(dir, 'written', 'nvidia_icd.json');
    expect(r.env['VK_ICD_FILENAMES']).toBe(written);
    const json = JSON.parse(readFileSync(written, 'utf8')) as {
      file_format_version: string;
      ICD: Record<string, string>;
    };
    expect(json.file_format_version).toBe('1.0.0');
    expect(json.ICD['library_path']).toBe(join(lib, 'libGLX_nvidia.so.0'));
    // the driver's own libraries beside it become findable; what was on the path stays first
    expect(r.env['LD_LIBRARY_PATH']).toBe(`/opt/x:${lib}`);
  });

  it('reads the library name when the JSON puts it on the next line', () => {
    const { icd, lib } = layout({
      'icd.d/nvidia_icd.json': '{"ICD": {"library_path":\n   "libGLX_nvidia.so.0"}}',
      'lib/libEGL_nvidia.so.0': '',
    });
    const r = entry({ NVIDIA_ICD_DIRS: icd, NVIDIA_LIB_DIRS: lib });
    expect(readFileSync(r.env['VK_ICD_FILENAMES']!, 'utf8')).toContain(join(lib, 'libEGL_nvidia.so.0'));
  });

  it('names the library by an absolute path when it was found through a relative folder', () => {
    const { icd } = layout({ 'lib/libEGL_nvidia.so.0': '' });
    const r = execFileSync(
      'bash',
      ['-c', `cd "${dir}" && bash ${SCRIPT} "${dir}/written" cat "${dir}/written/nvidia_icd.json"`],
      {
        encoding: 'utf8',
        env: { PATH: process.env['PATH']!, NVIDIA_ICD_DIRS: icd, NVIDIA_LIB_DIRS: 'lib' },
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    expect(JSON.parse(r).ICD.library_path).toBe(join(dir, 'lib', 'libEGL_nvidia.so.0'));
  });

  it("keeps NVIDIA's own ICD file, and still runs the command, when no ICD file can be written", () => {
    const { icd, lib } = layout({
      'icd.d/nvidia_icd.json': '{"ICD": {"library_path": "libGLX_nvidia.so.0"}}',
      'lib/libEGL_nvidia.so.0': '',
      'not-a-folder': '',
    });
    const out = execFileSync('bash', ['-c', `bash ${SCRIPT} "${dir}/not-a-folder/icd" env 2>"${dir}/stderr"`], {
      encoding: 'utf8',
      env: { PATH: process.env['PATH']!, NVIDIA_ICD_DIRS: icd, NVIDIA_LIB_DIRS: lib },
    });
    expect(out).not.toContain('VK_ICD_FILENAMES=');
    expect(readFileSync(join(dir, 'stderr'), 'utf8')).toMatch(/cannot write[\s\S]*through .*nvidia_icd\.json/);
  });

  it('says there is no NVIDIA driver, and still runs the command', () => {
    const { icd, lib } = layout({});
    const r = entry({ NVIDIA_ICD_DIRS: icd, NVIDIA_LIB_DIRS: lib });
    expect(r.env['VK_ICD_FILENAMES']).toBeUndefined();
    expect(r.stderr).toMatch(/no NVIDIA Vulkan driver.*graphics/s);
  });

  it('leaves a driver chosen by the caller alone', () => {
    const { icd, lib } = layout({ 'lib/libGLX_nvidia.so.0': '' });
    const r = entry({ NVIDIA_ICD_DIRS: icd, NVIDIA_LIB_DIRS: lib, VK_ICD_FILENAMES: '/x/lvp_icd.json' });
    expect(r.env['VK_ICD_FILENAMES']).toBe('/x/lvp_icd.json');
    expect(r.stderr).toContain('left alone');
  });
});
